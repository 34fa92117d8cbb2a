"""The CDK app and its constructs.

jsii warns at every start that Node 20, which this project's machines run, is past its end of life; the CDK still
works on it, and the warning buries the output people need to read. Set here, before any module of the package
loads jsii.
"""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
