"""The retrieval package: its modules import one another without a cycle, and the two backends are siblings."""

from test_layering import PACKAGE_ROOT, package_imports

from hf_lareid.retrieval import GalleryBackend, GalleryIndex, QdrantGalleryIndex


def test_retrieval_modules_form_no_import_cycle():
    folder = PACKAGE_ROOT / "retrieval"
    graph = {
        f"hf_lareid.retrieval.{path.stem}": {
            name for name in package_imports(path) if name.startswith("hf_lareid.retrieval.")
        }
        for path in folder.glob("*.py")
        if path.name != "__init__.py"
    }
    done, active = set(), []

    def visit(module):
        assert module not in active, f"import cycle: {' -> '.join([*active[active.index(module) :], module])}"
        if module in done:
            return
        active.append(module)
        for imported in graph.get(module, ()):
            visit(imported)
        active.pop()
        done.add(module)

    for module in graph:
        visit(module)


def test_the_faiss_and_qdrant_indexes_are_siblings():
    assert not issubclass(QdrantGalleryIndex, GalleryIndex) and not issubclass(GalleryIndex, QdrantGalleryIndex)
    assert issubclass(GalleryIndex, GalleryBackend) and issubclass(QdrantGalleryIndex, GalleryBackend)
