"""style_transfer: Gram matrices against a direct sum, the loss falling on EfficientNet-Lite0,
content-only reconstruction, default layers (Nakano, Gatys, stage CNNs, derived), average pooling
on a copy, the single-layer grid, determinism, progress/cancel, validation, grey (1-channel)
networks seeing the luma, and the CLI.

Images are 48-64 px and runs a few iterations: the CPU is shared.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from explorer import data, objectives, surgery, zoo
from explorer.charts import style as charts_style
from explorer.classifier import Classifier, ClassifierInfo
from explorer.experiments import _style_networks as networks
from explorer.experiments import style_transfer as ST
from explorer.optimize import Cancelled

LITE0 = "efficientnet-lite0"
RESNET18 = "random:torchvision:resnet18"


def _available(name: str) -> bool:
    return any(r["name"] == name and r["available"] for r in zoo.list_models(zoo.DEFAULT_CHECKPOINTS))


needs_lite0 = pytest.mark.skipif(not _available(LITE0), reason="the efficientnet-lite0 pip package is not installed")


@pytest.fixture(scope="module")
def images():
    return data.sample_photos()["chelsea"], data.sample_textures()["gravel"]


def config(images, models=(LITE0,), size=64, **kwargs) -> ST.Config:
    kwargs.setdefault("device", "cpu")
    return ST.Config.for_images(images[0], images[1], models, size=size, **kwargs)


# --- objectives -------------------------------------------------------------------------

def test_gram_matrix_matches_a_direct_sum():
    f = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    n, c, h, w = f.shape
    direct = torch.zeros(n, c, c, dtype=torch.float64)
    for b in range(n):
        for i in range(c):
            for j in range(c):
                direct[b, i, j] = sum(f[b, i, y, x] * f[b, j, y, x] for y in range(h) for x in range(w))
    direct /= c * h * w
    torch.testing.assert_close(objectives.gram_matrix(f), direct)


def test_style_and_content_distances_are_mean_squared_differences():
    g = torch.Generator().manual_seed(1)
    f, t = torch.randn(2, 3, 4, 4, generator=g), torch.randn(1, 3, 4, 4, generator=g)
    target = objectives.gram_matrix(t)
    d = objectives.style_distance({"a": f, "b": 2 * f}, {"a": target, "b": target})
    expected = [((objectives.gram_matrix(f[k:k + 1]) - target) ** 2).mean()
                + ((objectives.gram_matrix(2 * f[k:k + 1]) - target) ** 2).mean() for k in range(2)]
    torch.testing.assert_close(d, torch.stack(expected))
    assert float(objectives.style_distance({"a": t}, {"a": target})) == 0.0
    # Gram matrices ignore where things are: a spatially shuffled map has the same style
    shuffled = t.flatten(2)[:, :, torch.randperm(16, generator=g)].reshape(t.shape)
    assert float(objectives.style_distance({"a": shuffled}, {"a": target})) == pytest.approx(0, abs=1e-12)
    torch.testing.assert_close(objectives.content_distance(f, t), ((f - t) ** 2).flatten(1).mean(1))
    assert torch.all(objectives.content(Identity(), "x", t)(t) == 0)


class Identity:
    """A stand-in network whose layers are the input times a factor; it counts its forward passes."""

    def __init__(self):
        self.passes = 0

    def features(self, x, layers):
        self.passes += 1
        return {l: x * (1 + i) for i, l in enumerate(layers)}


def test_a_composite_objective_reads_every_layer_of_a_network_in_one_forward_pass():
    g = torch.Generator().manual_seed(2)
    x, t = torch.rand(2, 3, 8, 8, generator=g), torch.rand(1, 3, 8, 8, generator=g)
    net, other = Identity(), Identity()
    grams = {"a": objectives.gram_matrix(t), "b": objectives.gram_matrix(2 * t)}
    loss = (objectives.content(net, "a", t) + 10 * objectives.style(net, grams) + 0.5 * objectives.tv()
            - objectives.content(other, "c", t))
    value = loss(x)
    assert (net.passes, other.passes) == (1, 1)  # four terms, two networks: two passes
    assert loss.reads[id(net)][1] == ("a", "b")
    expected = (((x - t) ** 2).flatten(1).mean(1) + 10 * objectives.style_distance({"a": x, "b": 2 * x}, grams)
                + 0.5 * objectives.total_variation(x) - ((x - t) ** 2).flatten(1).mean(1))
    torch.testing.assert_close(value, expected)
    parts = objectives.evaluate({"content": objectives.content(net, "a", t), "style": objectives.style(net, grams)}, x)
    assert net.passes == 2 and sorted(parts) == ["content", "style"]  # the terms apart, still one pass
    torch.testing.assert_close(parts["style"], objectives.style_distance({"a": x, "b": 2 * x}, grams))


@needs_lite0
def test_a_style_transfer_step_costs_one_forward_pass_of_the_shared_network(images, monkeypatch):
    passes = []
    original = Classifier.features
    monkeypatch.setattr(Classifier, "features", lambda self, x, layers: passes.append(tuple(layers))
                        or original(self, x, layers))
    ST.run(config(images, size=48, iterations=3, optimizer="adam", tv_weight=1.0))
    # setup: layer sizes, the content target, the style Grams; then 3 steps + the last loss; then the error
    steps = [p for p in passes if len(p) == 4]
    assert len(steps) == 3 + 1 + 1  # the style Grams, then one pass per loss evaluation
    assert set(steps[-1]) == {"blocks.1", "blocks.2", "blocks.4", "blocks.6"}


# --- the optimization on EfficientNet-Lite0 ---------------------------------------------

@needs_lite0
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_total_loss_falls_by_half_in_20_steps(images, optimizer):
    result = ST.run(config(images, optimizer=optimizer, iterations=20))
    (t,) = result.transfers
    assert len(t.loss_history) == 21
    assert t.final_loss <= 0.5 * t.initial_loss, (t.initial_loss, t.final_loss)
    assert t.final_loss == pytest.approx(t.loss_history.min())
    # from the content image the content term starts at exactly 0 and the style term is all of the loss
    assert t.content_history[0] == 0 and t.style_history[0] == pytest.approx(t.initial_loss)
    np.testing.assert_allclose(t.content_history + t.style_history + t.tv_history, t.loss_history, rtol=1e-5)
    assert t.style_layers == ("blocks.1", "blocks.2", "blocks.4", "blocks.6")
    assert result.content_model == LITE0 and result.content_layer == "blocks.4"
    assert t.image.shape == result.content_image.shape == (3, 43, 64)  # chelsea is 451 x 300
    assert t.image.min() >= 0 and t.image.max() <= 1
    assert np.abs(t.image - result.content_image).mean() > 0.02  # the style changed the image


@needs_lite0
def test_content_only_from_the_content_image_stays_exactly_there(images):
    result = ST.run(config(images, style_weight=0.0, iterations=5))
    (t,) = result.transfers
    assert t.content_error == 0 and np.all(t.loss_history == 0)
    np.testing.assert_array_equal(t.image, result.content_image)


@needs_lite0
def test_content_only_from_noise_reproduces_the_content_features(images):
    result = ST.run(config(images, style_weight=0.0, start="noise", iterations=60))
    (t,) = result.transfers
    start_error = float(np.sqrt(t.content_history[0]))  # relative terms: content = error^2
    assert start_error > 0.9
    assert t.content_error < 0.35 * start_error, (start_error, t.content_error)
    # the reported error is the one the loss measures, at the returned image
    assert t.content_error ** 2 == pytest.approx(t.final_loss, rel=1e-3)


@needs_lite0
def test_runs_are_deterministic_for_a_seed(images):
    cfg = config(images, size=48, start="noise", iterations=3, optimizer="adam", seed=3)
    a, b = ST.run(cfg), ST.run(cfg)
    np.testing.assert_array_equal(a.transfers[0].image, b.transfers[0].image)
    np.testing.assert_array_equal(a.transfers[0].loss_history, b.transfers[0].loss_history)
    other = ST.run(config(images, size=48, start="noise", iterations=3, optimizer="adam", seed=4))
    assert not np.array_equal(a.transfers[0].image, other.transfers[0].image)


# --- layers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet18():
    return networks.random_weights("torchvision:resnet18")


def test_resnet_defaults_are_nakanos_and_the_derived_rule_agrees(resnet18):
    choice = ST.default_layers(resnet18)
    assert choice.style_layers == ("layer1", "layer2", "layer3", "layer4") and choice.content_layer == "layer3"
    assert choice.rule.startswith("Nakano")
    derived = networks.derived_layers(resnet18)
    assert (derived.style_layers, derived.content_layer) == (choice.style_layers, choice.content_layer)


@needs_lite0
def test_efficientnet_defaults_are_derived_from_its_named_layers():
    choice = ST.default_layers(zoo.load(LITE0, device="cpu"))
    # the last block at 1/4, 1/8, 1/16 and 1/32 of the input, like a ResNet's four stages
    assert choice.style_layers == ("blocks.1", "blocks.2", "blocks.4", "blocks.6")
    assert choice.content_layer == "blocks.4" and choice.rule.startswith("derived")


class TinyVGG(nn.Module):
    """A VGG-shaped net (five max-pooled blocks, two convs in the fourth) with torchvision's
    ``features``/``classifier`` layout."""

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in (4, "M", 4, "M", 4, "M", 4, 4, "M", 4, "M"):
            layers += [nn.MaxPool2d(2, 2)] if v == "M" else [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = c if v == "M" else v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 10))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def tiny_vgg() -> Classifier:
    """``TinyVGG`` as a Classifier, its layers named the way the zoo names VGGs."""
    torch.manual_seed(0)
    net = TinyVGG()
    info = ClassifierInfo(name="tiny-vgg", dataset="imagenet", class_names=tuple("abcdefghij"),
                          input_size=(3, 64, 64))
    return Classifier(net, info, (0.5,) * 3, (0.5,) * 3, layers=zoo.default_layers("torchvision:tiny_vgg", net))


def test_vgg_defaults_are_gatys_and_pooling_becomes_average_on_a_copy():
    model = tiny_vgg()
    choice = ST.default_layers(model)
    assert choice.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert choice.content_layer == "relu4_2"
    assert surgery.has_max_pooling_stack(model)
    avg = surgery.with_average_pooling(model)
    assert not surgery.has_max_pooling_stack(avg) and surgery.has_max_pooling_stack(model)  # the shared model is untouched
    assert sum(isinstance(m, nn.AvgPool2d) for m in avg.net.features) == 5
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    a, m = avg.features(x, ["relu2_1"])["relu2_1"], model.features(x, ["relu2_1"])["relu2_1"]
    pooled = nn.functional.avg_pool2d(model.features(x, ["relu1_1"])["relu1_1"], 2)
    torch.testing.assert_close(a, torch.relu(model.net.features[3](pooled)))  # conv2_1 on the average-pooled map
    assert not torch.allclose(a, m)
    assert not any(p.requires_grad for p in avg.parameters()) and not avg.training


# --- the single-layer grid -------------------------------------------------------------------

@needs_lite0
def test_single_layer_grid_has_one_image_per_network_and_layer(images, resnet18):
    cfg = config(images, models=(LITE0, RESNET18), size=48, iterations=2, single_layer=True)
    result = ST.run(cfg)
    expected = [(LITE0, (l,)) for l in ("blocks.1", "blocks.2", "blocks.4", "blocks.6")] + \
        [(RESNET18, (l,)) for l in ("layer1", "layer2", "layer3", "layer4")]
    assert [(t.style_model, t.style_layers) for t in result.transfers] == expected
    grid = result.grid()
    assert [m for m, _ in grid] == [LITE0, RESNET18] and [len(row) for _, row in grid] == [4, 4]
    assert all(t.image.shape == result.content_image.shape for t in result.transfers)
    # the content network stays the standard one for every transfer; the random net is flagged
    assert result.content_model == LITE0 and result.transfers[-1].kind == "random weights"
    assert any("random weights" in n for n in result.notes)
    # the figure: a row of inputs, then one row per network with one tile per layer
    fig = charts_style.transfer_figure(result)
    assert fig.size[1] > 3 * 48 and len(result.rows()) == 8


@needs_lite0
def test_chosen_layers_and_separate_content_network(images, resnet18):
    cfg = config(images, models=(RESNET18,), size=48, iterations=2, content_model=LITE0, content_layer="blocks.2",
                 style_layers=(("layer2", "layer3"),))
    result = ST.run(cfg)
    (t,) = result.transfers
    assert (result.content_model, result.content_layer, t.style_layers) == (LITE0, "blocks.2", ("layer2", "layer3"))
    assert result.layer_rules == ("chosen",)
    with pytest.raises(ValueError, match="no style layer"):
        ST.run(config(images, models=(RESNET18,), size=48, iterations=1, style_layers=(("blocks.1",),)))


# --- progress, cancel, validation -----------------------------------------------------------

@needs_lite0
def test_progress_counts_every_iteration_and_cancel_stops(images):
    calls = []
    ST.run(config(images, size=48, iterations=4), progress=lambda s, n, m: calls.append((s, n, m["model"])))
    assert [(s, n) for s, n, _ in calls] == [(k, 4) for k in range(1, 5)] and calls[0][2] == LITE0
    with pytest.raises(Cancelled):
        ST.run(config(images, size=48, iterations=50), cancel=lambda: True)


@pytest.mark.parametrize("bad", [
    dict(optimizer="sgd"), dict(start="grey"), dict(size=16), dict(iterations=0), dict(style_weight=-1.0),
    dict(style_weight=0.0, content_weight=0.0), dict(style_layers=(("a",), ("b",))), dict(learning_rate=0.0),
])
def test_bad_configs_are_refused(images, bad):
    size = bad.pop("size", 48)
    with pytest.raises(ValueError):
        ST.Config.for_images(images[0], images[1], (LITE0,), size=size, **bad)


def test_configs_hold_the_working_resolution_and_are_hashable(images):
    cfg = ST.Config.for_images(images[0], images[1], (LITE0,), size=64, style_size=32)
    assert cfg.content_shape == (43, 64, 3) and cfg.style_shape == (32, 32, 3)
    assert hash(cfg) == hash(ST.Config.for_images(images[0], images[1], (LITE0,), size=64, style_size=32))
    content, style = cfg.images()
    assert content.shape == (43, 64, 3) and style.shape == (32, 32, 3)
    # float [3, H, W] images in [0, 1] give the same bytes as their uint8 originals
    chw = images[0].transpose(2, 0, 1).astype(np.float32) / 255
    assert ST.Config.for_images(chw, images[1], (LITE0,), size=64).content == cfg.content


# --- grey (1-channel) networks --------------------------------------------------------------

def test_luma_is_the_itu_601_formula_and_differentiable():
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    y = networks.luma(x)
    expected = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    assert y.shape == (2, 1, 5, 7)
    torch.testing.assert_close(y, expected)
    # d(sum of weighted luma)/dx: each pixel's channel gets its weight times the pixel's own weight
    w = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, w * torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1))
    assert torch.autograd.gradcheck(networks.luma, (x.detach().requires_grad_(True),))
    g = torch.rand(1, 1, 4, 4)
    assert networks.luma(g) is g  # a grey image is already its luma
    with pytest.raises(ValueError, match="1 or 3"):
        networks.luma(torch.rand(1, 4, 4, 4))


def test_a_grey_view_feeds_the_network_the_inverted_luma_in_one_pass(tiny_pair, monkeypatch):
    model = tiny_pair[0]
    assert model.info.input_size[0] == 1 and networks.grey_is_inverted(model)  # Fashion-MNIST: white on black
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2), requires_grad=True)
    for invert in (True, False):
        view = networks.prepare(model, average_pooling=True, invert_grey=invert)
        assert isinstance(view, networks.GreyView) and view.invert is invert
        assert (view.name, view.info, view.layer_names) == (model.name, model.info, model.layer_names)
        grey = networks.luma(x.detach())
        want = model.features(1 - grey if invert else grey, ["stage2"])["stage2"]
        torch.testing.assert_close(view.features(x.detach(), ["stage2"])["stage2"], want, rtol=1e-4, atol=1e-5)
    passes = []
    original = Classifier.features
    monkeypatch.setattr(Classifier, "features",
                        lambda self, x, layers: passes.append(x.shape) or original(self, x, layers))
    view.features(x, ["stage1", "stage3"])["stage3"].sum().backward()
    assert passes == [(1, 1, 40, 40)]  # the luma inside the call, then one pass of the grey network
    r, g, b = x.grad[0]  # the gradient reaches the RGB pixels through the luma: in the ratio of its weights
    torch.testing.assert_close(r / 0.299, g / 0.587, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b / 0.114, g / 0.587, rtol=1e-4, atol=1e-6)
    assert float(x.grad.abs().sum()) > 0


def test_stage_cnns_take_nakanos_rule_on_their_four_stages(tiny_pair):
    choice = ST.default_layers(tiny_pair[0])
    assert choice.style_layers == ("stage1", "stage2", "stage3", "stage4") and choice.content_layer == "stage3"
    assert choice.rule.startswith("stage CNN")


def test_grey_networks_run_style_transfer_on_a_grey_image(images, tiny_root):
    result = ST.run(config(images, models=("tiny-standard", "tiny-robust"), size=48, iterations=4))
    assert result.content_model == "tiny-standard" and result.content_layer == "stage3"
    assert [t.style_model for t in result.transfers] == ["tiny-standard", "tiny-robust"]
    for t in result.transfers:
        assert t.image.shape == result.content_image.shape == (3, 32, 48)
        np.testing.assert_array_equal(t.image[0], t.image[1])  # grey: R = G = B
        np.testing.assert_array_equal(t.image[0], t.image[2])
        assert t.final_loss < t.initial_loss and t.style_layers == ("stage1", "stage2", "stage3", "stage4")
    assert any("luma" in n and "grey" in n for n in result.notes)
    # from the content image with no style the output is exactly the content's luma
    still = ST.run(config(images, models=("tiny-standard",), size=48, iterations=2, style_weight=0.0)).transfers[0]
    luma = networks.luma(torch.from_numpy(result.content_image)[None])[0, 0].numpy()
    np.testing.assert_allclose(still.image[0], luma, atol=1e-6)
    # the inversion is the networks' view only: not inverting gives another image, not a negative one
    plain = ST.run(config(images, models=("tiny-standard",), size=48, iterations=4, invert_grey=False)).transfers[0]
    assert not np.allclose(plain.image, result.transfers[0].image)
    assert abs(plain.image.mean() - result.transfers[0].image.mean()) < 0.2


def test_a_grey_transfer_step_is_one_pass_of_the_grey_network(images, tiny_root, monkeypatch):
    passes = []
    original = Classifier.features
    monkeypatch.setattr(Classifier, "features", lambda self, x, layers: passes.append((x.shape[1], tuple(layers)))
                        or original(self, x, layers))
    ST.run(config(images, models=("tiny-standard",), size=48, iterations=3, optimizer="adam"))
    steps = [p for p in passes if len(p[1]) == 4]  # content (stage3) and style (stage1-4) read together
    assert len(steps) == 1 + 3 + 1 and all(c == 1 for c, _ in passes)  # the style Grams, 3 steps, the last loss


def test_a_grey_style_network_beside_an_rgb_content_network_optimizes_colour(images, tiny_root):
    result = ST.run(config(images, models=("tiny-robust",), size=48, iterations=2, content_model=RESNET18))
    (t,) = result.transfers
    assert t.image.shape == (3, 32, 48) and not np.allclose(t.image[0], t.image[1])
    assert t.final_loss < t.initial_loss and any("RGB" in n for n in result.notes)


def test_networks_neither_grey_nor_rgb_are_refused_in_one_line(images):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 10))
    info = ClassifierInfo(name="rgba-net", dataset="imagenet", class_names=tuple("abcdefghij"), input_size=(4, 8, 8))
    model = Classifier(net, info, (0.5,) * 4, (0.5,) * 4, layers={"conv": "0"})
    with pytest.raises(ValueError, match=r"^rgba-net takes 4-channel images; style transfer needs an RGB or a "
                                         r"1-channel \(grey\) network$"):
        networks.prepare(model, average_pooling=True)
    with pytest.raises(ValueError, match="1-channel"):
        networks.GreyView(tiny_vgg(), invert=False)
    with pytest.raises(ValueError, match="invert_grey"):
        ST.Config.for_images(images[0], images[1], ("tiny-standard",), size=48, invert_grey="yes")


# --- the CLI -----------------------------------------------------------------------------------

@needs_lite0
def test_cli_writes_the_stylized_png(tmp_path, capsys):
    from explorer.cli import main

    out = tmp_path / "out.png"
    assert main(["style", "chelsea", "gravel", "--size", "48", "--iterations", "2", "--out", str(out),
                 "--figure", str(tmp_path / "fig.png"), "--device", "cpu"]) == 0
    assert Image.open(out).size == (48, 32)
    assert Image.open(tmp_path / "fig.png").size[0] > 48
    text = capsys.readouterr().out
    assert "s/iteration" in text and "efficientnet-lite0" in text
    assert main(["style", "no-such-image", "gravel", "--size", "48"]) == 2


# --- default networks ------------------------------------------------------------------------

def _row(name, dataset="imagenet", kind="standard", available=True):
    return {"name": name, "dataset": dataset, "kind": kind, "available": available}


def test_default_networks_prefer_the_pair_then_nakanos_then_what_is_here():
    offline = [_row("resnet50", available=False), _row("madry-imagenet-resnet50-l2-3", kind="robust (l2 3)",
                                                        available=False),
               _row(LITE0), _row("fmnist-standard", "fashion-mnist"),
               _row("fmnist-robust-linf", "fashion-mnist", "robust (linf 0.1)")]
    assert ST.default_networks(offline, ("fmnist-standard", "fmnist-robust-linf")) == (LITE0,)
    assert [n for n, _ in ST.missing_networks(offline)] == ["madry-imagenet-resnet50-l2-3", "resnet50", "vgg19"]
    assert ST.missing_networks(offline)[0][1] == "python -m explorer fetch madry-imagenet-resnet50-l2-3"
    online = [_row("resnet50"), _row("vgg19"), _row(LITE0), _row("madry-imagenet-resnet50-linf-4", kind="robust"),
              _row("madry-imagenet-resnet50-l2-3", kind="robust (l2 3)")]
    assert ST.default_networks(online) == ("resnet50", "madry-imagenet-resnet50-l2-3")
    assert ST.default_networks(online, ("vgg19", "madry-imagenet-resnet50-linf-4")) == (
        "vgg19", "madry-imagenet-resnet50-linf-4")
    assert ST.default_networks([_row("fmnist-standard", "fashion-mnist")]) == ()
    # offline with the bundled CIFAR-10 pair: that pair, since no ImageNet standard-and-robust pair is here
    cifar = [_row("cifar10-standard", "cifar10"), _row("cifar10-robust-l2", "cifar10", "robust (l2 0.5)")]
    assert ST.default_networks(offline + cifar, ("fmnist-standard", "fmnist-robust-linf")) == ST.BUNDLED_PAIR
    assert ST.default_networks(online + cifar) == ("resnet50", "madry-imagenet-resnet50-l2-3")  # ImageNet first
    assert ST.default_networks(cifar[:1] + [_row(LITE0)]) == (LITE0,)  # no CIFAR-10 pair: what ImageNet has
    names = ST.style_network_names(offline + cifar)
    assert names[:3] == [LITE0, "cifar10-standard", "cifar10-robust-l2"] and "resnet50" not in names
    assert names[3:] == ["fmnist-standard", "fmnist-robust-linf"]  # grey networks after the photo ones
