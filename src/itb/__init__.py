"""itb: simulation and decision support for intrathecal baclofen (ITB) pump therapy.

Not a medical device and not clinical advice.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
