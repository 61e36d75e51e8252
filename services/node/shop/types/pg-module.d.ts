// The shop uses `pg` untyped (it ships no types; @types/pg is not a dependency).
declare module "pg";
