-- A group's dependency-confusion allow-list (issue 15): name patterns whose proxy versions stay
-- visible although a hosted member has the name. A JSON list, like the other pattern columns.
ALTER TABLE registries ADD COLUMN dc_allow_list TEXT NOT NULL DEFAULT '[]';
