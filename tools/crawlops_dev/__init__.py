"""Development tooling, not deployed: the local demo stack (``stack``) and the one-shot demo (``demo``)."""
