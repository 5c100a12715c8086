"""The experiment layer: comparisons of cells and runners as Optuna studies.

It stands above the trainer and drives it: every run is an ordinary
`train_mnist_rnn.py` process in a folder of its own, and the study knows runs only
by their flags and their folder's metrics.jsonl. Nothing in `mnist_rnn` or `models`
imports this package, and no TensorFlow is imported here.
"""
