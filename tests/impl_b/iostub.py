"""The parts of IOLoop's thread-safe API that the runtime calls besides sending (for test stubs)."""


class LinkControlStub:
    def mark_bound(self, link_id):  # SPEC 13.1 session binding
        pass

    def close_conn(self, link_id, flush=False):
        pass

    def limits_status(self):
        return {}
