"""Networks for understanding (ResNet / cResNet families) and the FLOP registry."""
