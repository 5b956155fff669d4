"""Views: documents, time-ordered indexes and tracking positions behind one port."""

from keel.views.port import IndexAdd, IndexRemove, Put, Remove, Update, ViewStore

__all__ = ["IndexAdd", "IndexRemove", "Put", "Remove", "Update", "ViewStore"]
