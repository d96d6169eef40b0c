"""The visitor-facing homepage."""
