"""Layer robustness, style transfer and app rows."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from explorer import data, objectives, zoo
from explorer.experiments import layer_robustness as LR
from explorer.experiments import style_transfer as ST

ROOT = Path(__file__).resolve().parents[1]


# --- layer robustness ---------------------------------------------------------------------

def layer_row(pair: tuple[str, str], n_images: int = 64, steps: int = 20, device: str = "cpu") -> dict:
    """Seconds for R at every layer of both models of ``pair`` (Linf at the models' eps 0.1)."""
    for name in pair:
        zoo.load(name, device=device)  # loading is not what is timed
    config = LR.Config(models=tuple(pair), norm="linf", eps=0.1, n_images=n_images, steps=steps, device=device)
    t0, c0 = time.perf_counter(), time.process_time()
    result = LR.run(config)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    layers = len(result.layers)
    return {"group": "layers", "models": " + ".join(pair), "layers": layers, "n_images": result.n_images,
            "steps": steps, "seconds": seconds, "cpu_seconds": cpu_seconds, "image_steps_per_s": layers * result.n_images * steps / seconds,
            "per_model_s": {m.model: m.seconds for m in result.models}}


# --- style transfer -----------------------------------------------------------------------

def style_images(size: int):
    content = data.sample_photos()["chelsea"]
    style = data.sample_textures()["brick"]
    return content, style


def gatys_baseline(net, content: torch.Tensor, style: torch.Tensor, content_layer: str, style_layers, iterations: int,
                   style_weight: float = 10.0) -> float:
    """The plain loop everyone writes (Gatys et al. 2016): L-BFGS on the pixels, MSE of the
    content layer plus MSE of Gram matrices, clamp after each step. Returns seconds."""
    layers = list(dict.fromkeys([content_layer, *style_layers]))
    with torch.no_grad():
        target = net.features(content, [content_layer])[content_layer]
        grams = {l: objectives.gram_matrix(f) for l, f in net.features(style, list(style_layers)).items()}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=ST.LBFGS_HISTORY)

    def closure():
        opt.zero_grad()
        f = net.features(x, layers)
        loss = (f[content_layer] - target).pow(2).mean()
        for l in style_layers:
            loss = loss + style_weight * (objectives.gram_matrix(f[l]) - grams[l]).pow(2).mean()
        loss.backward()
        return loss

    t0 = time.perf_counter()
    for _ in range(iterations):
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
    return time.perf_counter() - t0


def style_row(model: str = "efficientnet-lite0", size: int = 256, iterations: int = 100, device: str = "cpu",
              repeats: int = 3) -> dict:
    """Seconds per iteration: ``style_transfer.run`` against ``gatys_baseline`` on the same
    network, images, layers and iteration count (L-BFGS, one evaluation per iteration),
    interleaved, timed by ``bench.timing``'s clock around each whole call (setup included)."""
    from bench.timing import paired

    content_u8, style_u8 = style_images(size)
    config = ST.Config.for_images(content_u8, style_u8, (model,), size=size, iterations=iterations, device=device)
    net = ST.load_network(model, torch.device(device))
    choice = ST.default_layers(net)
    c_u8, s_u8 = config.images()
    content, style = ST.to_tensor(c_u8).to(device), ST.to_tensor(s_u8).to(device)
    warm = ST.Config.for_images(content_u8, style_u8, (model,), size=size, iterations=2, device=device)
    ST.run(warm)
    gatys_baseline(net, content, style, choice.content_layer, choice.style_layers, 2)
    t, _, _ = paired(lambda: ST.run(config),
                     lambda: gatys_baseline(net, content, style, choice.content_layer, choice.style_layers, iterations),
                     min_repeats=repeats, max_repeats=repeats, budget_s=0, warmup=False)
    return {"group": "style", "model": model, "size": f"{content.shape[-1]}x{content.shape[-2]}",
            "iterations": iterations, "ours_s_per_iter": t.a_seconds / iterations,
            "peer_s_per_iter": t.b_seconds / iterations, "ratio": t.ratio, "ratio_wall": t.ratio_wall,
            "clock": t.clock, "repeats": t.repeats}


# --- the app in a real browser ------------------------------------------------------------

def app_row(log_dir: Path, attack_timeout: float = 300) -> dict:
    """Seconds from ``streamlit run app.py`` to the first rendered home page, and from the
    attack lab's Run click to its finished result, in Debian's chromium (tests/e2e helpers)."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    import e2e_browser as E  # noqa: E402

    why = E.missing_browser()
    if why:
        return {"group": "app", "skipped": why}
    from playwright.sync_api import sync_playwright

    log_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=E.CHROMIUM, args=E.CHROMIUM_ARGS)
        page = browser.new_context(viewport=E.VIEWPORT).new_page()
        t0 = time.monotonic()
        server = E.Server(log_dir / "bench-server.log")
        try:
            healthy = time.monotonic() - t0
            page.goto(server.url + "/")
            page.get_by_text("Model zoo").first.wait_for(timeout=120_000)  # the navigation (app.py) is drawn
            nav = time.monotonic() - t0
            page.get_by_role("heading", name="Guided tour").wait_for(timeout=120_000)  # the home page's own content
            painted = time.monotonic() - t0
            E.wait_idle(page, 120)
            home_idle = time.monotonic() - t0
            E.open_page(page, server.url + "/attack_lab")
            button = E.submit_button(page, "Run").first
            t1 = time.monotonic()
            E.submit_and_wait(page, button, page.get_by_text("Does the perturbation transfer?"), attack_timeout)
            attack = time.monotonic() - t1
            errors = E.exceptions(page)
        finally:
            server.stop()
            browser.close()
    return {"group": "app", "server_healthy_s": healthy, "navigation_s": nav, "home_painted_s": painted,
            "home_idle_s": home_idle,
            "attack_lab_run_s": attack, "exceptions": len(errors)}


def layer_batching_row(model_name: str, n_images: int = 64, steps: int = 20, device: str = "cpu",
                       budget_s: float = 20.0) -> dict:
    """Is one pass for all layers (the batch replicated once per layer, replica i scored at
    layer i) faster than one optimization per layer? The numerators only, same images,
    same threat; reported as a fast-path row (on = batched)."""
    from bench.timing import paired
    from explorer.optimize import optimize
    from explorer.threat import make_threat

    model = zoo.load(model_name, device=device)
    layers = LR.select_layers(model)
    x = LR.load_images(model.info.dataset, model.info.input_size, n_images, 0)[0].to(device)
    threat = make_threat("linf", 0.1)
    with torch.no_grad():
        clean = model.features(x, layers)

    def per_layer():
        return torch.cat([optimize(objectives.layer_deviation(model.feature_fn(l), clean[l]), x, threat, steps,
                                   random_start=True, generator=torch.Generator().manual_seed(i)).loss
                          for i, l in enumerate(layers)])

    def batched():
        n = x.shape[0]

        def loss(z):
            feats = model.features(z, layers)
            return torch.cat([(feats[l][i * n:(i + 1) * n].flatten(1) - clean[l].flatten(1)).norm(dim=1)
                              for i, l in enumerate(layers)])

        return optimize(loss, x.repeat(len(layers), 1, 1, 1), threat, steps, random_start=True,
                        generator=torch.Generator().manual_seed(0)).loss

    t, a, b = paired(batched, per_layer, min_repeats=3, budget_s=budget_s)
    return {"group": "fastpath", "model": model_name, "norm": "linf", "batch": n_images,
            "switch": f"layer robustness: all {len(layers)} layers in one batched pass (numerators only)",
            "on_s": t.a_seconds, "off_s": t.b_seconds, "ratio": t.ratio, "repeats": t.repeats,
            "clock": t.clock, "ratio_wall": t.ratio_wall, "on_acc": None, "off_acc": None,
            "mean_deviation_on": float(a.mean()), "mean_deviation_off": float(b.mean())}


def layer_folding_row(model_name: str, n_images: int = 64, steps: int = 20, device: str = "cpu",
                      budget_s: float = 20.0) -> dict:
    """Layer robustness's numerators and pair distances (``layer_robustness.measure``) on the
    BatchNorm-folded twin against the model as loaded (a fast-path row, on = folded)."""
    from bench.timing import paired
    from explorer.folding import folded_classifier
    from explorer.threat import make_threat

    model = zoo.load(model_name, device=device)
    layers = LR.select_layers(model)
    x = LR.load_images(model.info.dataset, model.info.input_size, n_images, 0)[0]
    partners = LR.random_partners(n_images, 4, torch.Generator().manual_seed(0))
    threat = make_threat("linf", 0.1)
    run = lambda m: LR.measure(m, x, layers, threat, steps, partners, batch_size=64, seed=0)  # noqa: E731
    t, a, b = paired(lambda: run(folded_classifier(model)), lambda: run(model), min_repeats=3, budget_s=budget_s)
    dev = lambda out: float(sum(v[0].mean() for v in out.values()) / len(out))  # noqa: E731
    return {"group": "fastpath", "model": model_name, "norm": "linf", "batch": n_images,
            "switch": f"layer robustness ({len(layers)} layers): BatchNorm folded (folding.folded_classifier)",
            "on_s": t.a_seconds, "off_s": t.b_seconds, "ratio": t.ratio, "repeats": t.repeats, "clock": t.clock,
            "ratio_wall": t.ratio_wall, "on_acc": None, "off_acc": None,
            "mean_deviation_on": dev(a), "mean_deviation_off": dev(b)}
