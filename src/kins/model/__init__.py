"""What a node's network is made of, shared by the renderer, the kernel layer and the simulator."""
