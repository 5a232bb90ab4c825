"""Host-side training recipes (PyTorch): a pool of CNNs for the complementary pair, and CBNet
(converting autoencoder -> lightweight classifier). Each recipe trains on the train split, picks
nothing on the test split, exports ONNX models with their metadata sidecars and writes a JSON
summary; ``toolkit train pool`` / ``toolkit train cbnet`` run them.
"""
