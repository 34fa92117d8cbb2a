"""Token resolution: the template's references become the local resources' names and ARNs, or placeholders."""

import json

import pytest

from local_mode.template import PlaceholderResolver, TokenResolver, UnresolvedReference

TEMPLATE = {
    "Parameters": {
        "Plain": {"Type": "String", "Default": "plain-value"},
        "FromSsm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/some/parameter"},
    },
    "Resources": {},
}


@pytest.fixture
def resolver() -> TokenResolver:
    resolver = TokenResolver(TEMPLATE, account="123456789012", region="us-east-1", stack_name="Stack")
    resolver.register("Fn", "local-fn", Arn="arn:aws:lambda:us-east-1:123456789012:function:local-fn")
    resolver.register("Bucket", "local-bucket", Arn="arn:aws:s3:::local-bucket")
    return resolver


def test_a_definition_string_resolves_to_the_local_function_arns(resolver):
    definition = {
        "Fn::Join": [
            "",
            ['{"Resource":"arn:', {"Ref": "AWS::Partition"}, ':states:::lambda:invoke","Fn":"',
             {"Fn::GetAtt": ["Fn", "Arn"]}, '"}'],
        ]
    }
    assert json.loads(resolver.resolve(definition)) == {
        "Resource": "arn:aws:states:::lambda:invoke", "Fn": "arn:aws:lambda:us-east-1:123456789012:function:local-fn",
    }


def test_sub_select_split_and_nested_values(resolver):
    value = {
        "Image": {"Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/repo:${Tag}"},
        "Objects": {"Fn::Sub": ["${Arn}/*", {"Arn": {"Fn::GetAtt": ["Bucket", "Arn"]}}]},
        "Literal": {"Fn::Sub": "${!NotAVariable}-${Bucket.Arn}"},
        "Second": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
        "List": [{"Ref": "Bucket"}, {"Ref": "Plain"}],
    }
    resolver.register("Tag", "v1")
    assert resolver.resolve(value) == {
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/repo:v1",
        "Objects": "arn:aws:s3:::local-bucket/*",
        "Literal": "${NotAVariable}-arn:aws:s3:::local-bucket",
        "Second": "b",
        "List": ["local-bucket", "plain-value"],
    }


@pytest.mark.parametrize(
    "token, named",
    [
        ({"Ref": "Missing"}, "Missing"),
        ({"Fn::GetAtt": ["Missing", "Arn"]}, "Missing"),
        ({"Fn::GetAtt": ["Bucket", "WebsiteURL"]}, "Bucket.WebsiteURL"),
        ({"Ref": "FromSsm"}, "FromSsm"),
        ({"Fn::If": ["Condition", "a", "b"]}, "Fn::If"),
    ],
)
def test_what_has_no_local_counterpart_is_named(resolver, token, named):
    with pytest.raises(UnresolvedReference) as raised:
        resolver.resolve(token)
    assert raised.value.name == named


def test_placeholders_name_references_as_cdk_nag_does():
    value = {
        "Definition": {"Fn::Join": ["", ['{"Fn":"', {"Fn::GetAtt": ["Fn", "Arn"]}, '"}']]},
        "Objects": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/${Bucket.Arn}"},
        "List": [{"Ref": "Bucket"}, {"Fn::GetAtt": "Fn.Arn"}],
    }
    assert PlaceholderResolver().resolve(value) == {
        "Definition": '{"Fn":"<Fn.Arn>"}',
        "Objects": "arn:<AWS::Partition>:s3:::<Bucket>/<Bucket.Arn>",
        "List": ["<Bucket>", "<Fn.Arn>"],
    }
