"""Training recipes: the default recipe (`recipe`), one run (`experiment`),
what `fit` trains on (`batches`), and multi-worker training (`multiworker`).

This package may import the core, `audio` and `models`, never the command.
`recipe` and `paired` run on any Keras backend; the other modules need
TensorFlow and load on first use.

Example:

>>> from keras_speechmix.training import experiment
>>> experiment.RECIPE["model"]
'logmel_fc'
"""
