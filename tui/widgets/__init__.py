"""The monitor's widgets and screens, one per module."""
