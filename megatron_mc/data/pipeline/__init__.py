"""mc-data: the MicroCoder dataset pipeline (collect, process, filter, verify); see README "Dataset pipeline"."""
