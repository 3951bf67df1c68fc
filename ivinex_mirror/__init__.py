"""Mirror an Ivinex CRM instance into SQLite."""
