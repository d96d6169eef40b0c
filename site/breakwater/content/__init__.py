"""Articles and categories: Markdown bodies rendered to sanitised HTML, visitor pages and API."""
