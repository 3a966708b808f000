#!/usr/bin/env python3
"""Writes an in-toto layout (in-toto 3.x reference implementation) for a three-step imprint pipeline.

usage: intoto_layout.py OWNER_KEY.pem FUNCTIONARY.pub OUT.layout

Steps fetch → build → package, each run by the functionary (imprint's key): every material of a step must be
a product of the step before it (MATCH … WITH PRODUCTS FROM …), nothing else is allowed; an inspection checks
the final tarball is the package step's product. Signed by the owner key.
"""
import sys

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.metadata import Metablock
from securesystemslib.signer import CryptoSigner

owner_pem, functionary_pub, out = sys.argv[1:4]
owner = CryptoSigner(load_pem_private_key(open(owner_pem, "rb").read(), None))

layout = Layout()
layout.set_relative_expiration(days=1)
key = layout.add_functionary_key_from_path(functionary_pub)
keyid = key["keyid"]

fetch = Step(name="fetch", pubkeys=[keyid])
fetch.expected_materials = [["ALLOW", "src/*"], ["DISALLOW", "*"]]
fetch.expected_products = [["CREATE", "work/app.py"], ["DISALLOW", "*"]]

build = Step(name="build", pubkeys=[keyid])
build.expected_materials = [["MATCH", "work/*", "WITH", "PRODUCTS", "FROM", "fetch"], ["DISALLOW", "*"]]
build.expected_products = [["CREATE", "dist/*"], ["DISALLOW", "*"]]

package = Step(name="package", pubkeys=[keyid])
package.expected_materials = [["MATCH", "dist/*", "WITH", "PRODUCTS", "FROM", "build"], ["DISALLOW", "*"]]
package.expected_products = [["CREATE", "app.tar"], ["DISALLOW", "*"]]

inspect = Inspection(name="untar", run=["true"])
inspect.expected_materials = [["MATCH", "app.tar", "WITH", "PRODUCTS", "FROM", "package"], ["ALLOW", "*"]]

layout.steps = [fetch, build, package]
layout.inspect = [inspect]

metablock = Metablock(signed=layout)
metablock.create_signature(owner)
metablock.dump(out)
