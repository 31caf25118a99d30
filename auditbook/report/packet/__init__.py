"""The audit packet: notebooks executed per criterion, offline HTML, manifest, signature, verification."""
import sys

# jsonschema, which nbformat imports, builds a Lark grammar at import time for rfc3987-syntax's IRI format
# checks when that package is installed (jupyterlab's extras install it): ~1.4 s of CPU in the build and in
# each notebook worker, every build. Nothing here checks IRIs — nbformat validates notebooks with
# fastjsonschema, which never uses jsonschema's format checkers — so in the processes that import the
# packet modules those checks are left out (python-jsonschema/jsonschema#1428). A process that imported
# rfc3987_syntax or jsonschema before is left as it is.
sys.modules.setdefault("rfc3987_syntax", None)
