"""tiktoken Encoding objects built from local .tiktoken files (no network)."""
import importlib, os, unittest.mock
import tiktoken
from tiktoken.load import load_tiktoken_bpe

BASES = {"r50k": "r50k_base", "cl100k": "cl100k_base", "o200k": "o200k_base"}

def encoding(vocab_dir, name):
    op = importlib.import_module("tiktoken_ext.openai_public")
    base = BASES[name]
    path = os.path.join(vocab_dir, base + ".tiktoken")
    with unittest.mock.patch.object(op, "load_tiktoken_bpe", lambda *a, **k: load_tiktoken_bpe(path)):
        d = getattr(op, base)()
    return tiktoken.Encoding(d["name"], pat_str=d["pat_str"], mergeable_ranks=d["mergeable_ranks"],
                             special_tokens=d["special_tokens"])
