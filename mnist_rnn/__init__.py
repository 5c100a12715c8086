"""The trainer's library: data, training loop, checks, run folders. Never reads flags.

It builds on `models` (the graph), never the other way round. Importing this package
selects legacy Keras before TensorFlow can be imported (`models.tf_env`); it imports
no TensorFlow itself: modules that need it load it through `models.tf_env`.
"""

from models import tf_env

tf_env.use_legacy_keras()
