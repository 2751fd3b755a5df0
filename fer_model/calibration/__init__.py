"""Calibrated probabilities: how a face's views are read and averaged, and how their calibration is fitted.

    tta.py      test-time augmentation: the views of a face and their calibrated, averaged probabilities
    fit.py      fitting a calibration (temperature, class offsets, uncertainty thresholds) to labelled faces
    folder.py   `fer-model calibrate`: a model's calibration re-fitted on a user's labelled folder
"""
