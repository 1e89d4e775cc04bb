"""Low-level vision probe of image encoders (Cai, Yin, Hammou and Mantiuk, CVPR 2025).

``stimuli`` renders Gabors, gratings and band-limited noise in cd/m^2 at 224 px and 60 ppd and
encodes them for a display; ``human`` holds the human reference models (CSFs, masking, contrast
matching) with their cited formulas; ``response`` the model response
``arccos(cos(f(T), f(R))) / pi``, the threshold search and the scores; ``battery`` the nine
tests, runnable on any callable that maps images to features. Import submodules directly.
"""
