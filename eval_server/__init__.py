"""A local rating server that speaks the MTurk requester API and serves HIT pages to raters."""
