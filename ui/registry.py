"""The one list of pages: app.py builds the navigation from it, the home page describes it, and
the tour, the exports, the links and the tests name pages by these constants (``ATTACK_LAB``),
never by their paths.

Adding a page is adding a ``PageInfo`` constant here, to ``PAGES``, and a file under pages/.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    """A page of the explorer.

    Attributes:
        path: the script, relative to app.py.
        title, icon: as shown in the navigation.
        summary: what the page shows, in plain words.
        source: the paper or discussion comment it comes from.
    """

    path: str
    title: str
    icon: str
    summary: str
    source: str = ""

    @property
    def url_path(self) -> str:
        """Where Streamlit serves it: the file's name (``attack_lab``); the home page is the root."""
        return "" if self.path == "pages/home.py" else self.path.removeprefix("pages/").removesuffix(".py")


HOME = PageInfo("pages/home.py", "Home", ":material/home:", "What the explorer is, the model zoo and the device.")

ATTACK_LAB = PageInfo(
    "pages/attack_lab.py", "Attack lab", ":material/bolt:",
    "One image, attacked with PGD on a standard and a robust model side by side: the adversarial "
    "image, the perturbation made visible, the class probabilities before and after, the loss per "
    "step, and whether the perturbation made on one model also fools the other.",
    "Ilyas et al. 2019, \"Adversarial Examples Are Not Bugs, They Are Features\" (Sections 1-2); "
    "PGD and adversarial training from Madry et al. 2018; the transfer question from Section 4 "
    "and the Distill discussion comments on transferability.")

MODEL_ZOO = PageInfo(
    "pages/model_zoo.py", "Model zoo", ":material/inventory_2:",
    "Every model the explorer knows: where it comes from, whether it is robust and to what, its "
    "measured clean and robust accuracy, accuracy against eps, which models work offline now and "
    "the one command that fetches the others.",
    "The models of the paper and its discussion: standard and adversarially trained (Madry et al. "
    "2018) classifiers; MadryLab's robust ImageNet and CIFAR-10 releases; our own Fashion-MNIST models.")

LAYER_ROBUSTNESS = PageInfo(
    "pages/layer_robustness.py", "Layer robustness", ":material/layers:",
    "R per layer: how far a layer's output moves inside a small ball, relative to how far apart two "
    "images' outputs are, for several models; lower is more robust.",
    "The authors' reply to Nakano, Distill discussion of Ilyas et al. 2019")

FEATURES = PageInfo(
    "pages/features.py", "Non-robust features", ":material/visibility:",
    "What PGD changes in frequency, class synthesis with large-eps targeted PGD, representation inversion "
    "(D_R / D_NR samples) and unit maximization, low/high-pass filters and the Fourier heat map, and "
    "Goh's closed-form linear features, standard and robust side by side.",
    "Ilyas et al. 2019 (Sections 3-4); Distill discussion: Hendrycks & Gilmer, Goh; Yin et al. 2019; "
    "Santurkar et al. 2019.")

STYLE_TRANSFER = PageInfo(
    "pages/style_transfer.py", "Style transfer", ":material/brush:",
    "A content image painted with a style image's textures through a fixed content network and several style networks side by side (standard and robust), and the single-layer grid: one image per (style network, layer).",
    "Nakano, \"Adversarially Robust Neural Style Transfer\", and the authors' reply (Distill discussion of Ilyas et al. 2019); Gatys et al. 2016.")

INSPECTOR = PageInfo(
    "pages/inspector.py", "Inspector", ":material/search:",
    "One image through every available model of its kind at once: top-5 classes, each model's input "
    "gradient (saliency map) side by side, and the smallest L2 and Linf eps at which PGD flips each "
    "model, found by bisection.",
    "Ilyas et al. 2019 (Section 4: robust models' gradients look like the object); Tsipras et al. 2019, "
    "\"Robustness May Be at Odds with Accuracy\" (Figure 2).")

CONSTRUCTED = PageInfo(
    "pages/constructed.py", "Constructed datasets", ":material/dataset:",
    "D_R, D_NR, D_rand and D_det: browse a constructed dataset next to its source images, our Table 1 (train on each, test on the real test set) beside the paper's, and a small live version.",
    "Ilyas et al. 2019, \"Adversarial Examples Are Not Bugs, They Are Features\", Section 3 (Table 1, Figure 2).")

DISCUSSION = PageInfo(
    "pages/discussion.py", "Discussion experiments", ":material/forum:",
    "Five comments rerun: transferability vs learnability, robust feature leakage (Goh), adversarial "
    "squares and non-transferable adversarial examples (Nakkiran), learning from mislabeled data "
    "(Wallace); the commenter's number beside ours, saved runs and small live ones.",
    "The Distill discussion of Ilyas et al. 2019 (Goh; Nakkiran; Wallace; the authors' replies) and the "
    "paper's Figure 3.")

PAGES: list[PageInfo] = [HOME, ATTACK_LAB, MODEL_ZOO, LAYER_ROBUSTNESS, FEATURES, STYLE_TRANSFER, INSPECTOR,
                         CONSTRUCTED, DISCUSSION]
