"""The local mode: the stack synthesized by CDK, created in an in-process moto, its real state machine run with
our handlers called in-process (see world.py and lambda_seam.py).

functions/ is the root of every Lambda asset: it goes first on sys.path here, so that this package imports the
handlers' `shared` code exactly as the handlers do.
"""

from astro_dag_deploy.local.project import make_functions_importable

make_functions_importable()
