"""The files hubheads writes into Hub repos (configuration_*, modeling_*, pipeline_*).

They are the one source of that code: exported repos get byte-identical copies, and `hubheads` imports the same
modules when installed with pip. They import only the standard library, torch and transformers, and each other only
through relative imports, which transformers' remote-code loader copies along.
"""
