"""Crossing Nets: 3D hand pose estimation from one depth image (Wan et al., CVPR 2017)."""

__version__ = "0.1.0"
