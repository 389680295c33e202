"""The results layer, above the labs: the seed ledger (`ledger`), `keras-labs reproduce`
(`reproduce`), the HTML report (`report`), the committed benchmark rounds (`benchmarks`) and
hyperparameter sweeps (`sweeps`). It reads the labs through the registry (`keras_labs.labs`);
no lab and nothing in the core imports it.
"""
