"""Datasets, features, collators (text batch + PyG Batch) and LightningDataModules."""
