"""Serving and asking: local SPARQL over a KG folder (``local``: Oxigraph or rdflib stores,
bound parameters, timeouts), the shipped example queries (``queries``), the Oxigraph server
(``server``) and remote SPARQL 1.1 endpoints (``endpoint``).

Imports from ``kgllm.kg.graph`` only.
"""
