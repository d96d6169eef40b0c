"""Homepage ad slots (carousel, sidebar, category_<slug>) and their ads with active windows."""
