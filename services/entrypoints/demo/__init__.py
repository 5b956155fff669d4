"""The demo: a year of retraining on scikit-learn's breast-cancer data."""
