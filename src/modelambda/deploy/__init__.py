"""Putting a service on AWS: the SAM template (``template.py``, with the resources every
strategy shares in ``resources.py``; each strategy's own in ``strategies/<name>.py``), its
offline CloudFormation translation and lint, then the plan and its executor.

Imports stay inside the modules: ``modelambda template --help`` loads none of this.
"""
