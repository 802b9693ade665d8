"""An offline HTML report of the pipeline's results: inline CSS and SVG charts, nothing fetched."""
