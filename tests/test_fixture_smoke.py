def test_tiny_models_learn(tiny_pair, fmnist_test):
    """The fixture models are trained, not random: well above 10% chance on held-out data."""
    std, rob = tiny_pair
    x, y = fmnist_test.float_images(slice(0, 500)), fmnist_test.labels[:500]
    for m in (std, rob):
        acc = (m.predict(x).argmax(1) == y).float().mean().item()
        assert acc > 0.4, (m.name, acc)
