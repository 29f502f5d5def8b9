"""`python -m knowledge.validate [DIR]`: load the knowledge base and report the first problem."""

import sys
from pathlib import Path

from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.errors import KnowledgeError
from knowledge.loader import load_knowledge


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else SEED_KNOWLEDGE_DIR
    try:
        kb = load_knowledge(root)
    except KnowledgeError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {len(kb.programs)} programs, {len(kb.vcs)} VCs, {len(kb.cdmos)} CDMOs, {len(kb.documents)} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
