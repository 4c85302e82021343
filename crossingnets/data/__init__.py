"""Data: one preprocessing path for synthetic and real frames, the HDF5 store, dataset readers."""
