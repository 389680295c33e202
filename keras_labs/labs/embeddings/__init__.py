"""Lab `embeddings`: what a CNN's penultimate layer learns, seen in 2-D and measured.

Seed report 000, exercise 3 and report 001, exercise 3 trained a small CNN on MNIST and drew
PCA and t-SNE maps of its features before and after training. Pictures alone are easy to
over-read, so this lab also scores them: the silhouette of the classes and the leave-one-out
k-NN accuracy, in the raw feature space and in each 2-D map.

The same network (same architecture, same seed, so the same initial weights) is embedded twice:
untrained, then after training. Features come from the layer named "features" of
`models.cnn.mnist_cnn` on a fixed test subset (the first `test_examples` test images). t-SNE runs
on the first `pca_components` principal components, with openTSNE when it is installed (its
FFT-accelerated gradient maps 10,000 points in about half the CPU time scikit-learn's
Barnes-Hut needs; see scripts/benchmark_embeddings.py) and scikit-learn otherwise. The run
leaves one four-panel figure (untrained/trained x PCA/t-SNE), the scores in metrics.json, and
the features, labels and a sprite for TensorBoard's Projector in tb/. The training curves are
scored on a seeded `validation_fraction` of the training split, never on the embedded test
images. The reports' claim, that the trained network's features cluster by class and the
untrained one's do not, is checked per map: `trained_beats_untrained_tsne` and
`trained_beats_untrained_pca` are True when training raised both the silhouette and the k-NN
accuracy of that map.
"""
