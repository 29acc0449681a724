"""The networks: ViT and ResNet-18 backbones, the DINO head, backbone + heads as one module."""
