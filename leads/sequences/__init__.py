"""Follow-up sequences: multi-step e-mails to enrolled leads, and their results.

``services`` writes (build, enrol, send once, unsubscribe, track), ``selectors``
reads (the sequence page's counts).
"""
