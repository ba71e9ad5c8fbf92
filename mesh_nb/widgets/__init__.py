"""ipywidgets faces over the Python API."""
