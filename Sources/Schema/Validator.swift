// Schema module: being written.
