"""Human studies: trial assembly, HIT pages, publishing and collecting through the MTurk API."""
