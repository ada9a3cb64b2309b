"""course_lib: the small GPU-aware library that the course "Optimization for
deep learning, from scratch" builds, one idea per module.

    device        default_device(), seed_everything()
    optim         every first-order optimizer, written from scratch
    grading       the checks that the lessons call
    authoring     solutions/ -> lessons/
    bench         python -m course_lib.bench
"""

__version__ = "0.1.0"
