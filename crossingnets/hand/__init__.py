"""The hand: joint conventions, a kinematic right hand, its depth rendering and meshes."""
