// The protobuf runtime for the code buf generates into gen/es: its imports
// of @bufbuild/protobuf are rewritten to these files (buf.gen.yaml), so that
// it resolves the package from services/node/node_modules.
export * from "@bufbuild/protobuf/codegenv2";
