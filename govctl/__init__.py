"""govctl: infrastructure as code and security operations for e-government clouds."""
__version__ = "0.1.0"
