"""Chip drivers, the I2C bus seam, the haptic buzzer and the sample-block types."""
