"""Data layer: prepare tfds datasets offline, list them, load them, and build input pipelines.

* `specs`: what the suite knows about each dataset (original files, sizes, embedded sample);
  imports no TensorFlow.
* `loading`: data dirs and status, `load`/`load_text`, the embedded samples, image pipelines.
* `preparation`: validating readers, our tfds builders and `prepare` (`keras-labs data prepare`).
* `text`: tokenization, `Vocabulary` and the language labs' (input, target) windows.

The package itself imports nothing, so that a lab's config can read `specs` without TensorFlow:
import the module you need (`from keras_labs.data import loading`).
"""
