"""features-not-bugs explorer: the library under the dashboard.

The experiments of "Adversarial Examples Are Not Bugs, They Are Features"
(Ilyas et al., 2019) and of its Distill discussion, on real models.
This package never imports streamlit.
"""

__version__ = "0.1.0"
