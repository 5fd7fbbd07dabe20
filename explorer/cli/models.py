"""Commands on models: train, evaluate, autoattack, list, fetch, convert."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from explorer import bounds as B
from explorer import cards, data, demo, evaluation, fetch, zoo
from explorer import distributed as D
from explorer import train as T
from explorer.cli.base import TRAIN_DATASETS_HELP, CLIError, _tqdm_progress, command

# --- train -------------------------------------------------------------------------

def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, type=B.name, help="output name: NAME.safetensors and NAME.json")
    p.add_argument("--arch", default="stage_cnn", help="stage_cnn, mlp, torchvision:<name>, timm:<name>")
    p.add_argument("--dataset", default="fashion-mnist", type=B.dataset, help=TRAIN_DATASETS_HELP)
    p.add_argument("--epochs", type=B.epochs, default=10)
    p.add_argument("--batch-size", type=B.batch_size, default=128)
    p.add_argument("--lr", type=B.learning_rate, default=0.1)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--weight-decay", type=B.fraction, default=5e-4)
    p.add_argument("--schedule", choices=["cosine", "step"], default="cosine")
    p.add_argument("--warmup-epochs", type=B.warmup_epochs, default=0)
    p.add_argument("--adv", choices=["l2", "linf"], default=None, help="adversarial training threat model")
    p.add_argument("--eps", type=B.eps, default=0.0)
    p.add_argument("--attack-steps", type=B.steps, default=7)
    p.add_argument("--attack-step-size", type=B.step_size, default=None, help="default 2.5*eps/steps")
    p.add_argument("--eps-warmup-epochs", type=B.warmup_epochs, default=0, help="ramp eps linearly over these epochs")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--limit", type=B.n_images, default=None,
                   help="a seeded, class-balanced subset of N training images")
    p.add_argument("--clean-weight", type=B.fraction, default=0.0,
                   help="adversarial training: weight of the clean-example loss (0 = Madry et al.)")
    p.add_argument("--init-from", default=None, help="start from these weights (fine-tuning)")
    p.add_argument("--bf16", action="store_true",
                   help="the training passes (and the training attack's) in bfloat16 autocast; weights stay fp32 "
                        "(2.6x faster on a CPU with AMX, see bench/README.md)")
    p.add_argument("--out-dir", default="checkpoints")
    p.add_argument("--device", default=None)
    p.add_argument("--resume", action="store_true", help="continue after the last finished epoch")
    p.add_argument("--register", action="store_true", help="add the model to out-dir/manifest.json")
    p.add_argument("--description", default="")


@command("train", "standard or PGD adversarial training", _add_train)
def cmd_train(args) -> int:
    cfg = T.TrainConfig(name=args.name, arch=args.arch, dataset=args.dataset, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
                        adv_norm=args.adv, eps=args.eps, attack_steps=args.attack_steps,
                        attack_step_size=args.attack_step_size, eps_warmup_epochs=args.eps_warmup_epochs,
                        augment=not args.no_augment, seed=args.seed, limit=args.limit, out_dir=args.out_dir,
                        clean_weight=args.clean_weight, init_from=args.init_from, bf16=args.bf16)
    try:
        cfg.validate()
    except T.TrainError as e:
        raise CLIError(str(e)) from e
    main_rank = D.is_main()
    progress = _tqdm_progress(f"train {cfg.name}") if main_rank else None
    card = T.train(cfg, resume=args.resume, device=args.device, progress=progress)
    if main_rank:
        if args.register:
            cards.register_trained(cfg, card, args.description)
        h = card["history"][-1]
        print(f"{cfg.name}: {len(card['history'])} epochs in {card['training_seconds']:.0f} s, "
              f"last train loss {h['train_loss']:.4f} acc {h['train_acc']:.4f}")
    return 0


# --- evaluate ----------------------------------------------------------------------



def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", type=B.name,
                   help="zoo model names; each is measured on the test set of the dataset it was trained on: "
                        + TRAIN_DATASETS_HELP + " (its source's test set)")
    p.add_argument("--norms", nargs="+", choices=["l2", "linf"], default=["linf", "l2"])
    p.add_argument("--eps-linf", nargs="+", type=B.eps, default=None, help="default: per dataset")
    p.add_argument("--eps-l2", nargs="+", type=B.eps, default=None, help="default: per dataset")
    p.add_argument("--steps", type=B.steps, default=20, help="PGD steps (step size 2.5*eps/steps)")
    p.add_argument("--restarts", type=B.restarts, default=1)
    p.add_argument("--limit", type=B.n_images, default=None,
                   help="first N test images (default: all; an image-folder set round-robin over its classes)")
    p.add_argument("--batch-size", type=B.batch_size, default=500)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--no-card", action="store_true",
                   help="print only: leave the model card and NAME.eval.json/.csv as they are")
    p.add_argument("--bundled-subset", action="store_true",
                   help="when the full test set of fashion-mnist or cifar10 is not here, measure on the small "
                        "bundled subset (the record and the card name it and its n); default: refuse")


@command("evaluate", "clean and PGD robust accuracy over eps lists; writes NAME.eval.json/.csv", _add_evaluate)
def cmd_evaluate(args) -> int:
    """Each model on the real test set of its dataset (fashion-mnist, cifar10, folder:ROOT's test/,
    or for constructed:PATH the set it was built from): ``cards.model_test_set``."""
    main_rank, world = D.is_main(), D.world_size()
    for name in args.names:
        spec = zoo.get_spec(name)
        test = cards.model_test_set(name, allow_subset=args.bundled_subset)
        default_eps = cards.evaluation_eps(spec.dataset)
        eps_by_norm = {"linf": args.eps_linf or default_eps["linf"], "l2": args.eps_l2 or default_eps["l2"]}
        n = len(test) if args.limit is None else min(args.limit, len(test))
        bar = tqdm(total=len(args.norms) * -(-n // world), desc=f"evaluate {name}",
                   dynamic_ncols=True) if main_rank else None
        res = cards.evaluate_model(name, args.norms, eps_by_norm, args.steps, args.restarts, args.limit,
                                   args.batch_size, args.device, args.seed, bar.update if bar else None,
                                   allow_subset=args.bundled_subset, test=test)
        if not main_rank:
            continue
        bar.close()
        res["command"] = cards.evaluation_command(name, args.norms, eps_by_norm, args.steps, args.limit,
                                                  args.restarts) + (" --bundled-subset" if args.bundled_subset else "")
        if not args.no_card:  # a quick check on a subset must not overwrite the card's full-test-set table
            cards.write_evaluation(spec, res, zoo.checkpoints_dir())
        print(f"{name}: on {res['test_set']}, {res['n']} images" +
              ("" if res["full_test_set"] else " (NOT the full test set)"))
        for r in res["results"]:
            label = "clean" if r["norm"] == "none" else f"{r['norm']} eps {r['eps']:g}"
            print(f"{name}: {label}: {100 * r['accuracy']:.2f}% ({r['correct']}/{r['n']})")
    return 0


def _add_autoattack(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", type=B.name, help="a zoo model (usually a robust one)")
    p.add_argument("--norm", choices=["l2", "linf"], required=True)
    p.add_argument("--eps", type=B.eps, required=True)
    p.add_argument("--n", type=B.n_images, default=1000,
                   help="the first N test images (default 1000; an image-folder set is read round-robin over "
                        "its classes)")
    p.add_argument("--batch-size", type=B.batch_size, default=250)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--bundled-subset", action="store_true", help="as for evaluate")


@command("autoattack", "AutoAttack beside PGD-20 on the first N test images; kept in the model card", _add_autoattack)
def cmd_autoattack(args) -> int:
    """torchattacks' AutoAttack (standard) and our PGD-20 on the same images: no gradient masking when close."""
    spec = zoo.get_spec(args.name)
    test = cards.model_test_set(args.name, allow_subset=args.bundled_subset)
    model = zoo.load(args.name, device=args.device)
    n = min(args.n, len(test))
    state = data.cache_dir() / "autoattack" / f"{args.name}-{args.norm}-{args.eps:g}.json"
    print(f"finished batches are kept in {state}; the same command resumes after a kill")
    with tqdm(total=n, desc=f"autoattack {args.name}", dynamic_ncols=True) as bar:
        rec = evaluation.autoattack_counts(model, test, args.norm, args.eps, n, batch_size=args.batch_size,
                                           seed=args.seed, progress=bar.update, state=state,
                                           weights_sha256=zoo.weights_sha256(args.name))
    rec["test_set"] = test.name
    rec["command"] = (f"python -m explorer autoattack {args.name} --norm {args.norm} --eps {args.eps:g} --n {n}"
                      + (" --bundled-subset" if args.bundled_subset else ""))
    cards.write_autoattack(spec, rec, zoo.checkpoints_dir())
    print(f"{args.name}: {args.norm} eps {args.eps:g} on {n} images of {test.name}: clean {100 * rec['clean']:.1f}%, "
          f"PGD-20 {100 * rec['pgd']:.1f}%, AutoAttack {100 * rec['autoattack']:.1f}%")
    return 0


# --- list ---------------------------------------------------------------------------

@command("list", "the zoo: every model, available offline or not, and why")
def cmd_list(args) -> int:
    rows = zoo.list_models()
    width = max([len(r["name"]) for r in rows] + [4])
    for r in rows:
        mark = "yes" if r["available"] else "no "
        print(f"{r['name']:<{width}}  {r['dataset']:<14} {r['kind']:<22} {mark}  {r['why']}")
    return 0


# --- fetch / convert (explorer/fetch.py, explorer/demo.py) ---------------------------

def _register_fetch() -> None:
    command("fetch", "download a canonical model, or with --demo all a talk needs (progress, resume, sha256)",
            demo.add_arguments)(demo.cmd_fetch)
    command("convert", "opt-in one-time conversion of a trusted pickled checkpoint to safetensors",
            fetch.add_convert_arguments)(fetch.cmd_convert)


_register_fetch()


